"""Lambda and API Gateway for the local stack: function workers, the HTTP gateway, event sources."""
