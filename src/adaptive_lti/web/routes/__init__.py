"""web/routes layer (see ARCHITECTURE.md)."""
