"""lti layer (see ARCHITECTURE.md)."""
