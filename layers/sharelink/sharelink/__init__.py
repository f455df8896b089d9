"""sharelink: create and manage cloud-drive share links (123pan, KDocs) from AWS Lambda."""
