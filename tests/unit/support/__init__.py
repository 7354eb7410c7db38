"""Unit-tier helpers, one module per subject (no tests of their own):

- aws: moto's table and bucket shaped like the stack's, with the environment a stack function gets
- api: the API Lambda handler called with API Gateway REST proxy events, on moto resources
- http: local HTTP servers, of a fake upstream or of a handler behind an authorizer
- approvals: recording EventBridge and Step Functions fakes, and approval records
- engine: the tasks the engine tests send the step runtime
"""
