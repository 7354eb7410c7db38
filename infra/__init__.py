"""CDK constructs: the stack composes them; each file owns one capability."""
