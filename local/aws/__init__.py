"""AWS for the local stack: moto with IAM enforced (server), the functions' roles (iam), the template's resources."""
