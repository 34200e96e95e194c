// Loaded before every test file: the tests run on the machine's Node 20, where the AWS SDK warns on first use that
// its later releases need Node 22 (Lambda's runtimes already are). The warning says nothing about the code under
// test, so it is turned off here, and in the processes the tests start, which inherit this environment.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
