"""Domain logic of the clickstream pipeline: plain, typed functions shared by the API,
the Lambda consumers, the local stack and the simulator."""
