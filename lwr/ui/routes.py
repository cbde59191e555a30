"""The dashboard's handlers for the route table, imported when first used.

The route table (:mod:`lwr.web.routes`) lists these; the pages themselves (and Jinja2, from the
``ui`` extra) are imported at the first request, so a server installed without the extra starts
and answers ``/ui/`` with a 404 that says what to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from lwr.errors import NotFoundError
from lwr.web.request import Context

Handler = Callable[[Context], Any]


def _page(name: str, signed_in: bool = True, before_body: str | None = None) -> Handler:
    served: list[Handler] = []

    def handler(ctx: Context) -> Any:
        if not served:
            try:
                web = importlib.import_module("lwr.ui.web")
                pages = importlib.import_module("lwr.ui.pages")
            except ModuleNotFoundError as exc:
                if exc.name != "jinja2":
                    raise
                raise NotFoundError("the dashboard needs Jinja2: pip install 'lwr[ui]'") from None
            before = getattr(pages, before_body) if before_body else None
            served.append(web.page(getattr(pages, name), signed_in, before))
        return served[0](ctx)

    handler.__name__ = f"ui_{name}"
    return handler


home = _page("home")
sign_in_form = _page("sign_in_form", signed_in=False)
sign_in = _page("sign_in_submit", signed_in=False)
sign_out = _page("sign_out_submit", signed_in=False)
job_list = _page("job_list")
job_details = _page("job_details")
download = _page("download")
submit_form = _page("submit_form")
submit = _page("submit_post", before_body="submit_precheck")
profile = _page("profile")
change_plan = _page("change_plan")
change_notifications = _page("change_notifications")
