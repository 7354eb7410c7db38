"""The tool registry: a tool is a Python function taking a pydantic model.

Register one with the `tool` decorator in any module of `sutram.tools` or of the user package
`sutram_tools` (both are imported when the registry is first used; a module that fails to import
fails the registry with an ImportError naming it, and a missing `sutram_tools` leaves only the
built-in tools, with a warning):

    class Args(BaseModel):
        city: str

    @tool("weather", delivery="at_least_once")
    def weather(args: Args, context: ToolContext) -> dict: ...

`delivery` declares what a retry may do. At-least-once tools can run again after a crash and
receive `context.idempotency_key` (stable for the step) to pass to the systems they change.
At-most-once tools never run twice: a crash once the call may have started (the step is marked
in flight right before it) stops the step with OutcomeUnknown; a crash before that is a plain retry.
"""

from __future__ import annotations

import importlib
import inspect
import logging
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

    def run(
        self, raw_args: dict[str, Any], context: ToolContext, before_call: Callable[[], None] = lambda: None
    ) -> Any:
        """Validate the arguments, then `before_call()` (an at-most-once step marks itself in flight
        there), then call the tool: nothing between the mark and the side effect can fail but the call."""
        try:
            args = self.args_model.model_validate(raw_args)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'args'}: {e['msg']}" for e in exc.errors())
            raise InvalidStepInput(f"tool {self.name!r}: {problems}") from None
        before_call()
        return self.function(args, context)


USER_PACKAGE = "sutram_tools"
_PACKAGES = ("sutram.tools", USER_PACKAGE)

_registry: dict[str, Tool] = {}
_loaded = False
_user_package_missing = False
logger = logging.getLogger(__name__)


def tool(name: str, delivery: Delivery = "at_least_once") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        args_model = next(iter(inspect.signature(function, eval_str=True).parameters.values())).annotation
        if not (inspect.isclass(args_model) and issubclass(args_model, BaseModel)):
            raise TypeError(f"tool {name!r}: the first parameter must be annotated with a pydantic model")
        if name in _registry and not _same_definition(_registry[name].function, function):
            raise ValueError(f"tool {name!r} is registered twice")
        _registry[name] = Tool(name, function, args_model, delivery, inspect.getdoc(function) or "")
        return function

    return register


def _same_definition(registered: Callable[..., Any], function: Callable[..., Any]) -> bool:
    """The same function, or the same definition run again: a module re-imported after its first
    import failed part way registers its tools a second time."""
    return registered is function or (
        registered.__module__ == function.__module__ and registered.__qualname__ == function.__qualname__
    )


def _import(module_name: str, *, may_be_missing: bool = False) -> Any:
    """The module `module_name`; None if it may be missing and is. An ImportError raised while it
    imports (a dependency missing from the deployment, say) is re-raised naming the tool module."""
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        if may_be_missing and isinstance(exc, ModuleNotFoundError) and exc.name == module_name:
            return None
        raise ImportError(f"tool module {module_name!r} failed to import: {exc}", name=module_name) from exc


def _load_modules() -> None:
    """Import every module of the built-in tools and of the user package, once. A deployment
    without a user package runs the built-in tools; anything else that fails to import raises, and
    raises again on the next use: the registry is never left half loaded in silence."""
    global _loaded, _user_package_missing
    if _loaded:
        return
    for package_name in _PACKAGES:
        package = _import(package_name, may_be_missing=package_name == USER_PACKAGE)
        if package is None:
            _user_package_missing = True
            logger.warning("no user tool package %r to import: only the built-in tools are registered", package_name)
            continue
        for module in pkgutil.iter_modules(package.__path__):
            _import(f"{package_name}.{module.name}")
    _loaded = True


def get_tool(name: str) -> Tool:
    _load_modules()
    try:
        return _registry[name]
    except KeyError:
        missing = f" (the user tool package {USER_PACKAGE!r} is not importable)" if _user_package_missing else ""
        raise InvalidStepInput(f"unknown tool {name!r}; registered: {', '.join(sorted(_registry))}{missing}") from None


def tool_names() -> frozenset[str]:
    _load_modules()
    return frozenset(_registry)
