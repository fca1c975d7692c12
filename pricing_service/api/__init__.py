"""HTTP controllers: thin; they parse, call the service and return."""
