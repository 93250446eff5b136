"""The API's endpoints, one module per area; ``api.urls`` registers each module's viewsets."""
