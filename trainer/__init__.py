"""The trainer: learns each site's captchas from its samples (torch, never imported by workers or the API)."""
