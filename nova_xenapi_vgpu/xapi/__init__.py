"""Talking to XAPI: sessions, retries, TLS, errors and typed records."""
