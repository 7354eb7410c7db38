"""Sutram: durable AI workflows on AWS Step Functions. Everything in this package runs in Lambda."""
