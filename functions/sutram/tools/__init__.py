"""The tool registry: a tool is a Python function taking a pydantic model.

Register one with the `tool` decorator in any module of `sutram.tools` or of the user package
`sutram_tools` (both are imported when the registry is first used):

    class Args(BaseModel):
        city: str

    @tool("weather", delivery="at_least_once")
    def weather(args: Args, context: ToolContext) -> dict: ...

`delivery` declares what a retry may do. At-least-once tools can run again after a crash and
receive `context.idempotency_key` (stable for the step) to pass to the systems they change.
At-most-once tools never run twice: a crash mid-call stops the step with OutcomeUnknown.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from sutram.errors import InvalidStepInput

Delivery = Literal["at_least_once", "at_most_once"]


@dataclass(frozen=True)
class ToolContext:
    tenant: str
    run_id: str
    step_path: str
    attempt: int

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}/{self.step_path}"


@dataclass(frozen=True)
class Tool:
    name: str
    function: Callable[[Any, ToolContext], Any]
    args_model: type[BaseModel]
    delivery: Delivery
    description: str

    def run(self, raw_args: dict[str, Any], context: ToolContext) -> Any:
        try:
            args = self.args_model.model_validate(raw_args)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'args'}: {e['msg']}" for e in exc.errors())
            raise InvalidStepInput(f"tool {self.name!r}: {problems}") from None
        return self.function(args, context)


_registry: dict[str, Tool] = {}
_loaded = False


def tool(name: str, delivery: Delivery = "at_least_once") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        args_model = next(iter(inspect.signature(function, eval_str=True).parameters.values())).annotation
        if not (inspect.isclass(args_model) and issubclass(args_model, BaseModel)):
            raise TypeError(f"tool {name!r}: the first parameter must be annotated with a pydantic model")
        if name in _registry and _registry[name].function is not function:
            raise ValueError(f"tool {name!r} is registered twice")
        _registry[name] = Tool(name, function, args_model, delivery, inspect.getdoc(function) or "")
        return function

    return register


def _load_modules() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package_name in ("sutram.tools", "sutram_tools"):
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError:
            continue
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{module.name}")


def get_tool(name: str) -> Tool:
    _load_modules()
    try:
        return _registry[name]
    except KeyError:
        raise InvalidStepInput(f"unknown tool {name!r}; registered: {', '.join(sorted(_registry))}") from None


def tool_names() -> frozenset[str]:
    _load_modules()
    return frozenset(_registry)
