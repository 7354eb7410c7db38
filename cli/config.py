"""Where the API URL and ID token come from, and saving them after `sutram login`.

First match wins:
  1. --api / --token
  2. SUTRAM_API_URL / SUTRAM_TOKEN
  3. ~/.sutram/config.json, written by `sutram login`
  4. .sutram/local.json in this directory or a parent, written by the local cloud
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.errors import EXIT_USAGE, CliError

LOCAL_CONFIG = Path(".sutram") / "local.json"


@dataclass(frozen=True)
class Config:
    api_url: str
    token: str


def user_config_path() -> Path:
    return Path.home() / ".sutram" / "config.json"


def find_local_config(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / LOCAL_CONFIG).is_file():
            return folder / LOCAL_CONFIG
    return None


def _read_json_file(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_USAGE) from None
    return content if isinstance(content, dict) else {}


def load_config(args: argparse.Namespace) -> Config:
    user = _read_json_file(user_config_path())
    local = _read_json_file(find_local_config(Path.cwd()))
    sources = (
        {"api_url": args.api, "token": args.token},
        {"api_url": os.environ.get("SUTRAM_API_URL"), "token": os.environ.get("SUTRAM_TOKEN")},
        {"api_url": user.get("api_url"), "token": user.get("token")},
        {
            "api_url": local.get("SUTRAM_API_URL") or local.get("api_url"),
            "token": local.get("SUTRAM_TOKEN") or local.get("token"),
        },
    )
    api_url = next((source["api_url"] for source in sources if source["api_url"]), None)
    token = next((source["token"] for source in sources if source["token"]), None)
    if not api_url:
        raise CliError("no API URL: pass --api, set SUTRAM_API_URL or run `sutram login --api URL`", EXIT_USAGE)
    if not token:
        raise CliError("no token: run `sutram login`, pass --token or set SUTRAM_TOKEN", EXIT_USAGE)
    return Config(api_url=api_url.rstrip("/"), token=token)


def save_user_config(values: dict[str, Any]) -> Path:
    path = user_config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    content = {**_read_json_file(path), **{name: value for name, value in values.items() if value is not None}}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the token is a secret
    with os.fdopen(descriptor, "w") as file:
        json.dump(content, file, indent=2)
    return path
