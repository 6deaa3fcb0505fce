"""scikit-learn's parameter protocol (``get_params`` / ``set_params``) for neuronkit's estimators,
without importing scikit-learn."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

E = TypeVar("E", bound="EstimatorParams")


class EstimatorParams:
    """Mixin giving an estimator scikit-learn's ``get_params`` / ``set_params``.

    The estimator keeps every constructor argument as an attribute of the same name (as
    scikit-learn requires), so ``sklearn.base.clone`` and model selection work.
    ``set_params`` builds the estimator again through ``__init__`` with the merged arguments:
    they are validated as at construction, and settings derived from them follow. The ``repr``
    names the arguments that differ from their defaults, as scikit-learn's does.
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.name != "self" and p.kind not in skip]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments by name (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: E, **params: Any) -> E:
        """Set constructor arguments by name; unknown names raise ``ValueError``. Returns
        ``self``; a refused value leaves every attribute as it was."""
        current = self.get_params()
        unknown = sorted(set(params) - set(current))
        if unknown:
            raise ValueError(f"params must be among {sorted(current)}, got {unknown}")
        saved = dict(self.__dict__)
        try:
            type(self).__init__(self, **{**current, **params})
        except BaseException:  # __init__ may have assigned the arguments it checked first
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        return self

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        changed = []
        for name, value in self.get_params().items():
            default = defaults.get(name, inspect.Parameter.empty)
            if value is default or (type(value) is type(default) and _same(value, default)):
                continue
            changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


def _same(a: Any, b: Any) -> bool:
    """``a == b`` where that is a plain truth value (tensors and arrays are never the same)."""
    try:
        return bool(a == b) if isinstance(a, (bool, int, float, str, tuple)) else False
    except (TypeError, ValueError, RuntimeError):
        return False
