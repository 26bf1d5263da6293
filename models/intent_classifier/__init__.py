"""Intent classifier for a bank's customer-service assistant: utterance in, intent and confidence out."""
