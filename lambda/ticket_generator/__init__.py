"""The ticket generator: an AWS Lambda function triggered by S3 uploads of ID proofs.

Deployed with the handler string ``ticket_generator.handler.handler``; locally,
``python -m ticket_generator.local_invoker`` feeds it the same S3 events through SQS.
"""
