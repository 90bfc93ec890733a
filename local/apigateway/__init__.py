"""API Gateway: ``gateway`` runs the REST API from its OpenAPI document and the WebSocket API;
``vtl`` renders the REST mapping templates as API Gateway's Velocity runtime does."""
