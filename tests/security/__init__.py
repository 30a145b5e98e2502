"""The security suite (docs/security.md): each threat of the model, attempted and refused."""
