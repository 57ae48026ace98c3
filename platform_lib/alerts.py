"""Tell the owning team when a product's port goes wrong: a sensor per domain that posts
`mesh status`'s record of a product to a webhook when its state changes.

A product turning `warn`, `STALE`, `BLOCKED`, `FAILED` or `UNREADABLE` is posted, and so is its
return to `ok` (`"was"` says from what), with a sentence in `"text"`, the field chat
tools' incoming webhooks (Slack, Mattermost) show. A product not yet published is not: a new mesh
starts that way. The webhook is `MESH_ALERT_WEBHOOK_<DOMAIN>`, else `MESH_ALERT_WEBHOOK`
(a chat's incoming webhook, an Alertmanager or a router that reads `owner`); without
one the sensor is stopped. A post that fails fails the tick, which Dagster shows, and
the next tick posts again: the sensor's cursor, the states last posted, only moves on
once the post got through.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict

import dagster as dg

from platform_lib.contract import Domain, Product
from platform_lib.status import NEVER, OK, PROBLEMS, WARN, status

WATCHED = tuple(state for state in (WARN, *PROBLEMS) if state != NEVER)
"""The states a product is posted for, on its way in and on its way out."""
TIMEOUT_SECONDS = 10


def webhook(domain: str) -> str | None:
    return os.environ.get(f"MESH_ALERT_WEBHOOK_{domain.upper()}") or os.environ.get("MESH_ALERT_WEBHOOK")


def changes(products: list[Product], last: dict[str, str]) -> tuple[dict[str, str], list[dict]]:
    """The states now, and a post for each product whose state changed into or out of WATCHED."""
    now, posts = {}, []
    for product in products:
        current = status(product)
        now[product.id] = current.state
        was = last.get(product.id, OK)
        if current.state != was and (current.state in WATCHED or was in WATCHED):
            said = f": {current.why}" if current.why else ""
            text = f"{product.id} ({product.owner}) is {current.state}, was {was}{said}"
            posts.append({"text": text, **asdict(current), "was": was, "domain": product.domain, "owner": product.owner})
    return now, posts


def post(url: str, alert: dict) -> None:
    import urllib.request  # not when the code location loads (tens of ms) for a sensor that may never post

    request = urllib.request.Request(url, json.dumps(alert).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
        pass


def status_alerts(domain: Domain, products: list[Product]) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{domain.name}_status_alerts",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING if webhook(domain.name) else dg.DefaultSensorStatus.STOPPED,
        description=f"Posts a product of {domain.name} turning warn, stale, blocked, failed or unreadable (and back) to the team's webhook.",
    )
    def _alerts(context: dg.SensorEvaluationContext):
        url = webhook(domain.name)
        if not url:
            return dg.SkipReason(f"no webhook: set MESH_ALERT_WEBHOOK_{domain.name.upper()} or MESH_ALERT_WEBHOOK")
        now, posts = changes(products, json.loads(context.cursor) if context.cursor else {})
        for alert in posts:
            try:
                post(url, alert)
            except OSError as error:
                raise RuntimeError(f"posting {alert['product']} {alert['state']} to the webhook of domain {domain.name} failed: {error}") from None
        context.update_cursor(json.dumps(now))
        return dg.SkipReason(f"posted {len(posts)} change(s)" if posts else "no change")

    return _alerts
