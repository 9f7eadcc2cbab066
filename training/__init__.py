"""The thin PyTorch trainer that consumes what the pipelines publish."""
