"""The REST API behind API Gateway (AWS_IAM authorization): one Powertools Router per area (`runs`,
`environments`), the error answers (`errors`) and the OpenAPI document (`openapi`), put together in `app`."""
