"""Cinder v3 handlers: parse the request, call CinderModel, answer with Cinder's enveloped
views ({"volume": {...}}, {"volumes": [...]}, ...); no state here (DESIGN §5). Policy
(admin-only calls, tenant scoping) lives in the model; which attributes a caller may *see*
lives here, in each family's view. urls.py names every handler as module.function.

One module per family, as models/:

    volumes.py         volume view, list filters, CRUD   volume_actions.py  POST .../action
    volume_types.py    types, extra specs, access, QoS   snapshots.py       snapshots
    attachments.py     the attachments API (3.27+)       quotas.py          quota sets, limits
    service.py         version documents, os-services, availability zones
    helpers.py         model and caller of a request, links, flags, sorting and paging
"""
