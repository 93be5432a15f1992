"""The hub's domain: aggregates on ``eventsourcing`` and the application that runs commands.

Read in this order: ``model`` (the aggregates and the uniqueness the store enforces),
``unit_of_work`` (how a command loads, and saves in one transaction), ``inbound`` (recording
interactions), ``identity`` (links, merges), ``policy`` and ``outbound`` (what may be sent,
replies and dispatch), ``application`` (``HubApplication``, which wires them together);
``crypto`` (crypto-shredding) and ``publishing`` (stored event -> published envelope).
"""
