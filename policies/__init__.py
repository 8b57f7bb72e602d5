"""The bundled default stage-policy.yaml and models.yaml."""
