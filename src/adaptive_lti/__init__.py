"""adaptive-lti: an LTI 1.3 tool that routes each learner along a YAML learning design."""

__version__ = "0.1.0"
