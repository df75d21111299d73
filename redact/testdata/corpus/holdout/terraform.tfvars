region           = "eu-west-1"
instance_type    = "t3.medium"
db_password      = "Violet26#ember706"
datadog_api_key  = "6daefcc65a57ae339e09cb8b38025900"
datadog_app_key  = "918dbec8b06928644a9090f2ae955df20d2784b8"
tags = { team = "payments", cost_center = "cc-8046" }
