"""Pager: formats the page an on-call engineer receives (a sandboxed worker agent)."""


def handler(service: str, severity: str, summary: str) -> dict:
    return {"page": f"[{severity.upper()}] {service}: {summary}", "sent": False, "channel": "dry-run"}
