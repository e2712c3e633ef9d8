"""Operators' tools over the platform's stores: the conservation audit, backup, restore.

Run as `python -m ops ...` against any deployment (the standard settings say where its
store is), or as `./dev audit|backup|restore` against the local stack's store.
"""
