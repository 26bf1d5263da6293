"""Serving: the generic KServe predictor for any registered model, and the local stand-in for Argo CD + KServe."""
