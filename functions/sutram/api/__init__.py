"""The HTTP API: `app`, the resolver that includes each capability's router and maps errors to HTTP."""
