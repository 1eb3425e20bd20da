"""The OpenAI fine-tuning API (files and jobs) and the seed's /train aliases."""
