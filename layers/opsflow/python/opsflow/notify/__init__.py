"""Notifications: one message model built from each event, rendered for Slack and Microsoft Teams."""
