"""TicketPlatform operator: spec (model) -> render -> apply -> observe, driven by thin Kopf handlers."""
