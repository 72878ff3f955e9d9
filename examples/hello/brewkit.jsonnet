// The smallest useful BrewKit project: one image, one command, one output.
local copy = std.native('copy');

{
  apiVersion: 'brewkit/v1',
  targets: {
    all: ['greeting'],

    greeting: {
      from: 'busybox',
      workdir: '/out',
      copy: copy('name.txt', 'name.txt'),
      command: 'echo "hello, $(cat name.txt)" > greeting.txt',
      output: '/out/greeting.txt:./out',
    },
  },
}
