"""Eval runs over HTTP (evaluator role): start a suite, follow it, read its report."""
