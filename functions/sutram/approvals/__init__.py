"""Human approvals: what an `approval` step and a gated tool call ask, how a decision is taken
(by an API caller or a signed callback link), and how it resumes the waiting run."""
