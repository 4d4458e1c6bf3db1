"""The Anti-Captcha task API (api.anti-captcha.com): routes, bodies, tasks as RQ jobs."""
