"""Site learning over HTTP: samples, feedback, status and control of each site's model."""
