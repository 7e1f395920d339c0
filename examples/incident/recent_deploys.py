"""Recent deploys: the deployments of a service in the last hours (a sandboxed worker agent).

Offline stand-in for a deployment log: it answers from a fixed table so that the example runs anywhere.
"""

DEPLOYS = {
    "checkout-api": [
        {"version": "2026.11.29-1", "at": "2026-11-29T07:58:02Z", "by": "pipeline", "change": "switch payment client"},
        {"version": "2026.11.28-3", "at": "2026-11-28T16:10:45Z", "by": "pipeline", "change": "raise pool size"},
    ]
}


def handler(service: str, hours: int = 24) -> dict:
    return {"service": service, "hours": hours, "deploys": DEPLOYS.get(service, [])}
