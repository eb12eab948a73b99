"""Tenancy: per-tenant checkpoints, costs and configuration."""
