"""CloudFormation's intrinsic functions and Conditions, evaluated for one template (the
emulator's fallbacks resolve the template's own values with it)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from infra.template import effective_parameters

NO_VALUE: Any = object()  # AWS::NoValue: the key/item disappears
SUB_TOKEN = re.compile(r"\$\{([^}]*)\}")


class ProvisionError(RuntimeError):
    pass


RefProvider = Callable[[str], Any]
AttProvider = Callable[[str, str], Any]


class Resolver:
    """Evaluates intrinsic functions of one template against known parameter values and two
    callbacks: the Ref value and the Fn::GetAtt value of a resource."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        pseudo: Mapping[str, str],
        ref: RefProvider,
        get_att: AttProvider,
    ) -> None:
        self.template = template
        self.values: dict[str, Any] = {**effective_parameters(template, parameters), **pseudo}
        self._ref = ref
        self._get_att = get_att
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            expr = self.template.get("Conditions", {}).get(name)
            if expr is None:
                raise ProvisionError(f"unknown condition {name}")
            self._conditions[name] = bool(self._condition_expr(expr))
        return self._conditions[name]

    def _condition_expr(self, expr: Any) -> Any:
        if isinstance(expr, dict) and len(expr) == 1:
            ((fn, arg),) = expr.items()
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right)
            if fn == "Fn::Not":
                return not self._condition_expr(arg[0])
            if fn == "Fn::And":
                return all(self._condition_expr(a) for a in arg)
            if fn == "Fn::Or":
                return any(self._condition_expr(a) for a in arg)
        return self.resolve(expr)

    def active(self, resource: Mapping[str, Any]) -> bool:
        cond = resource.get("Condition")
        return cond is None or self.condition(cond)

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            return self.values[name]
        if name in self.template.get("Resources", {}):
            return self._ref(name)
        raise ProvisionError(f"Ref to unknown name {name}")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
        out: dict[str, Any] = {}
        for key, value in node.items():
            resolved = self.resolve(value)
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    def sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(variables[token])
            if "." in token and token.split(".", 1)[0] in self.template.get("Resources", {}):
                logical, attr = token.split(".", 1)
                return str(self._get_att(logical, attr))
            return str(self.ref(token))

        return SUB_TOKEN.sub(replace, text)

    def get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        logical, attr = arg[0], self.resolve(arg[1])
        return self._get_att(logical, attr)

    def if_(self, arg: Any) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def join(self, arg: Any) -> str:
        sep, items = arg
        return str(sep).join(str(x) for x in self.resolve(items))

    def select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def split(self, arg: Any) -> list[str]:
        sep, text = arg
        return str(self.resolve(text)).split(sep)

    def find_in_map(self, arg: Any) -> Any:
        name, top, second = (self.resolve(a) for a in arg)
        return self.template["Mappings"][name][top][second]


_INTRINSICS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": lambda r, a: r.ref(a),
    "Fn::Sub": Resolver.sub,
    "Fn::GetAtt": Resolver.get_att,
    "Fn::If": Resolver.if_,
    "Fn::Join": Resolver.join,
    "Fn::Select": Resolver.select,
    "Fn::Split": Resolver.split,
    "Fn::FindInMap": Resolver.find_in_map,
    "Fn::ToJsonString": lambda r, a: json.dumps(r.resolve(a)),
}


def references(node: Any) -> set[str]:
    """Names a template fragment refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value.split(".", 1)[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {t.split(".", 1)[0] for t in SUB_TOKEN.findall(text)}
                if isinstance(value, list):
                    found |= references(value[1])
            else:
                found |= references(value)
    return found
