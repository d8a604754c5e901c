"""The VM side of a build: VGPU objects for claims, rollback, migration.

Empty until the build-path work lands; see the README's architecture.
"""
