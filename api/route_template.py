"""The route a request was answered by, as its path template: ``/api/v1/patrols/{patrol_id}``,
never ``/api/v1/patrols/5f0c…``. Metrics are labelled with it and the access log names it,
so that ids never become label values (one time series per patrol would fill Prometheus).

Read from the scope once the app has run, where the router left what it matched:

- nothing matched (a 404 of no route, a body refused before routing): ``unmatched``;
- a mount (the console's and the docs' static files): its prefix and ``/{path}``;
- a route without path parameters: the path itself, which is then its template;
- a route with them: the route's own template (``scope["route"].path_format``) under the
  prefix it was included with. FastAPI keeps included routers nested, so a route knows
  only its own part (``/patrols/{patrol_id}``); the prefix is the part of the path
  before where that template matches (``/api/v1``). Prefixes here hold no parameters.
"""

from __future__ import annotations

from starlette.types import Scope

from api.headers import route_path

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The template of the route that answered ``scope``, or ``unmatched``."""
    if "endpoint" not in scope:
        return UNMATCHED
    root: str = scope.get("root_path", "")
    mounted = root[len(scope.get("app_root_path", root)) :]
    if mounted:
        return f"{mounted}/{{path}}"
    path = route_path(scope)
    if not scope.get("path_params"):
        return path
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(template, str) or pattern is None:
        return UNMATCHED
    for start, character in enumerate(path):
        if character == "/" and pattern.fullmatch(path[start:]):
            return path[:start] + template
    return template
