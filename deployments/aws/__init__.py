"""The only package that imports boto3: narrow functions taking and returning plain values."""
