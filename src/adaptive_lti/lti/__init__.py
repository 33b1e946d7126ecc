"""LTI 1.3 and LTI Advantage: everything that speaks the protocol.

Lives here: the OIDC login and launch validation (each refusal names its check), claim parsing
into a typed launch context, the DB-backed tool configuration and launch-data store, the tool's
keys and the platforms' key sets, the new-window fallback, and the platform service clients:
Assignment and Grade Services, Names and Role Provisioning, Deep Linking, Dynamic Registration.
May import: ``adaptive_lti.db`` and ``adaptive_lti.core``; it is the only package of the tool that imports
pylti1p3 or a JOSE library. Outbound HTTP takes an injectable httpx transport.
"""
