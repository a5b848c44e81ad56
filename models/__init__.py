"""The models shipped with handwrite, installed as the package ``handwrite.models``; see handwrite.bundle."""
