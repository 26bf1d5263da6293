"""Upstream CRDs, vendored with their licences, that every manifest ctcd writes is validated against."""
