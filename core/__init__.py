"""The ground-floor app: what every other app shares (domain errors, roles, the request
context, the audit trail, the notification outbox and the outbound address guard).

It imports Django and third-party libraries only, never a project app; higher apps plug in
through the registries it owns (e.g. ``core.notifications.register_delivery``).
"""
