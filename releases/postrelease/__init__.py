"""Post-release work: what follows a deployment (validation checklist, retrospective and
action items, impact assessment, release notes, communications, evidence) — its services,
pages, forms and URLs. Facts owned by higher apps (incidents, say) reach its pages through
the ``panel`` registry."""
