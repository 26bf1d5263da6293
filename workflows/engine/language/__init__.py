"""Argo's languages: {{...}} tags, expr-lang (parser, evaluator, functions), govaluate conditions and durations."""
