"""Amazon Bedrock: ``model`` is the stand-in model, speaking the Converse wire format, with
Bedrock's prompt-cache accounting."""
